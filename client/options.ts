/** Flag parsers shared by the commands. */
import { InvalidArgumentError } from 'commander';
import { GATE_NAMES } from '../core/plan';

export function gateName(value: string): string {
  if (!(GATE_NAMES as readonly string[]).includes(value) && !value.startsWith('prerequisite:')) {
    throw new InvalidArgumentError(`expected one of ${GATE_NAMES.join(', ')}, or prerequisite:NAME`);
  }
  return value;
}
