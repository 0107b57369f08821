/**
 * What `fn` threw, for assertions on an error's class and fields; an Error saying so when it
 * returned instead, so that a test expecting a throw fails.
 */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('the function returned; it was expected to throw');
}
