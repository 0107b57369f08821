// Module hooks for a test's child process that runs the library's TypeScript sources directly
// (Node's --experimental-transform-types): the sources import each other as `./x.js`, as the
// build needs, so a relative `.js` that does not exist is looked up as `.ts`.
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (error) {
    if (error?.code === 'ERR_MODULE_NOT_FOUND' && /^\.\.?\//.test(specifier) && specifier.endsWith('.js')) {
      return next(`${specifier.slice(0, -3)}.ts`, context);
    }
    throw error;
  }
}
