#!/usr/bin/env node
// postinstall: leaves a working `temporal` CLI for the project, and checks that the native pieces whose install
// scripts package.json's allowScripts denies (esbuild, @swc/core, ssh2 and its cpu-features) work without them.
require('tsx/cjs');
const { ensureTemporal, findTemporal } = require('../stack/temporalBinary');

async function main() {
  require('esbuild').transformSync('let a: number = 1', { loader: 'ts' });
  require('@swc/core').transformSync('let a: number = 1', { jsc: { parser: { syntax: 'typescript' } } });
  require('ssh2').utils.generateKeyPairSync('ed25519'); // pure JavaScript and Node's crypto, no native binding
  const path = await ensureTemporal((line) => console.log(`cutover: ${line}`));
  const found = findTemporal();
  console.log(`cutover: temporal CLI ready at ${path}${found ? ` (${found.source})` : ''}`);
}

main().catch((error) => {
  console.error(`cutover: install failed: ${error.message}`);
  process.exit(1);
});
