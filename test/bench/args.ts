/** The value after `name` on the bench script's command line (`--calls 5000`), if given. */
export function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}
