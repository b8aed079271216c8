/** The checkout Cutover runs from: default state (.cutover/), lab/bin, examples/ and bin/ are under it (also when compiled, see build/layout.cjs). */
export { ROOT as PROJECT_ROOT } from './build/layout.cjs';
