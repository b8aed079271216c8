/** A mistake the user can fix (bad plan, bad flag, unreachable server). Printed as one paragraph, no stack. */
export class UserError extends Error {
  override readonly name = 'UserError';
}
