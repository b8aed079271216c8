import { sep } from 'node:path';

/** Compiled JavaScript (build/build.ts) runs from below the checkout's .cutover/build/. */
const BUILD_DIR = `${sep}.cutover${sep}build${sep}`;
const built = `${__dirname}${sep}`.lastIndexOf(BUILD_DIR);

/** The checkout Cutover runs from: default state (.cutover/), lab/bin, examples/ and bin/ are under it. This file sits at its top. */
export const PROJECT_ROOT = built >= 0 ? __dirname.slice(0, built) : __dirname;
