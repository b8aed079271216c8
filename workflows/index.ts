export { upgradeFleet } from './upgradeFleet';
