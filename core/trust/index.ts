/**
 * Signed decisions and the trust policy, pure: keys and fingerprints, decision tokens and their verification,
 * the trust file, quorum and plan digests. Safe to import from workflow code (no Node built-ins, no clock, no
 * randomness: functions that need either take it as a parameter).
 */
export { canonicalJson } from './canonical';
export { Decision, DECISIONS, GATE_DECISIONS, GateName, GUIDED_FAILURE, isOperatorDecision, OPERATOR_DECISIONS } from './decisions';
export { jsonDigest, planDigest } from './digest';
export {
  ApproverName,
  Fingerprint,
  fingerprint,
  newKeyPair,
  parsePrivateKey,
  parsePublicKeyLine,
  publicKeyLine,
  PRIVATE_KEY_TYPE,
  PUBLIC_KEY_TYPE,
  type KeyPair,
  type PrivateKeyInfo,
  type PublicKeyInfo,
} from './keys';
export {
  allowedApprovers,
  groupMembers,
  mayDecide,
  parseTrustFile,
  patternMatches,
  planAuthorAllowed,
  policyDigest,
  refuseUnsigned,
  secretAllowed,
  trustedKey,
  TrustFile,
  type DecisionRequest,
  type TrustedKey,
  type TrustFileResult,
  type TrustPolicy,
} from './policy';
export { approvalCount, effectiveGate, expandApprovers, quorumMet, type CountedApproval, type EffectiveGate } from './quorum';
export {
  DECISION_CONTEXT,
  DecisionStatement,
  MAX_TOKEN_LENGTH,
  newNonce,
  readToken,
  signStatement,
  TOKEN_PREFIX,
  verifyToken,
  type ExpectedDecision,
  type ReadToken,
  type Refusal,
  type UnsignedStatement,
  type VerifiedDecision,
} from './statement';
export { PLAN_CONTEXT, PlanStatement, SignedPlan, planOfInput, signPlan, verifyPlanSignature } from './planSignature';
