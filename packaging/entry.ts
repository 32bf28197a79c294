// The executable's entry point (packaging/build.ts): first the web build's files, embedded by
// the generated web/dist/embed.js (which hands them to the server), then the CLI as from a
// checkout. (No top-level await: the compiled build uses bytecode.)
// (web/dist/embed.js exists only after packaging/build.ts has built the web apps.)
import '../web/dist/embed.js';
import '../src/main.ts';
