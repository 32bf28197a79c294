import { runCli } from './cli/index.ts';

// argv → cli/; nothing else. (No top-level await: the compiled build uses bytecode, which needs CommonJS-style entry.)
runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
