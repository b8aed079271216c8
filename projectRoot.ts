/** The checkout Cutover runs from (this file sits at its top): default state (.cutover/), lab/bin, examples/ and bin/ are under it. */
export const PROJECT_ROOT = __dirname;
