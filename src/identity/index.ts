export {
  authenticateOperatorToken,
  bootstrapOperator,
  createOperatorToken,
  LOCAL_ROOT,
  OPERATOR_TOKEN_PREFIX,
  type OperatorPrincipal,
  type OperatorRole,
} from './operators.ts';
export { hashPassword, verifyPassword } from './passwords.ts';
export { createUserRepository, type PlatformRole, type UserRow } from './users.repository.ts';
