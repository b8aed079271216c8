export { upgradeFleet } from './upgradeFleet';
export { runHostSteps } from './runHostSteps';
