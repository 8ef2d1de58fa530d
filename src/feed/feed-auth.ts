/**
 * Who may watch what: a JWT (HS256 with a shared secret, or any algorithm from a JWKS) whose
 * `deployments` claim lists the deployment ids the bearer may subscribe to, and whose `nodes`
 * claim lists the nodes ("*": all, for operators). A token needs at least one of the two; a
 * token without `nodes` sees no node. Verified with jose. FEED_AUTH=none disables it, explicitly
 * and loudly.
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { isIdentifier } from '../lib/identifiers.js';
import { errorMessage } from '../lib/errors.js';

export interface FeedAuthConfig {
  readonly mode: 'jwt' | 'none';
  readonly secret: string | undefined;
  readonly jwksUrl: string | undefined;
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
  /** Refuse tokens without `exp` (default on: a token that never expires cannot be revoked by time). */
  readonly requireExpiry?: boolean;
}

export interface Grant {
  /** undefined: every deployment. */
  readonly deployments: ReadonlySet<string> | undefined;
  /** undefined: every node; empty: none (a deployment-only token). */
  readonly nodes: ReadonlySet<string> | undefined;
  /** ms since epoch; undefined: no expiry. */
  readonly expiresAt: number | undefined;
  readonly subject: string | undefined;
}

export class FeedAuthError extends Error {}

export type FeedAuthenticator = ((token: string | undefined) => Promise<Grant>) & { readonly configured: boolean };

export function createFeedAuthenticator(config: FeedAuthConfig): FeedAuthenticator {
  if (config.mode === 'none') {
    return Object.assign(
      () =>
        Promise.resolve<Grant>({ deployments: undefined, nodes: undefined, expiresAt: undefined, subject: undefined }),
      { configured: true },
    );
  }
  const key = config.jwksUrl
    ? createRemoteJWKSet(new URL(config.jwksUrl))
    : config.secret
      ? new TextEncoder().encode(config.secret)
      : undefined;
  const verify = async (token: string | undefined): Promise<Grant> => {
    if (key === undefined) throw new FeedAuthError('feed authentication is not configured');
    if (!token) throw new FeedAuthError('a token is required (?token= or Authorization: Bearer)');
    let payload: JWTPayload;
    try {
      const options = {
        ...(config.jwksUrl ? {} : { algorithms: ['HS256'] }),
        ...(config.issuer ? { issuer: config.issuer } : {}),
        ...(config.audience ? { audience: config.audience } : {}),
        ...(config.requireExpiry === false ? {} : { requiredClaims: ['exp'] }),
      };
      ({ payload } =
        typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options));
    } catch (error) {
      throw new FeedAuthError(`invalid token: ${errorMessage(error)}`);
    }
    if (payload.deployments === undefined && payload.nodes === undefined)
      throw new FeedAuthError('token has no "deployments" or "nodes" claim (a non-empty array of ids, or ["*"])');
    return {
      deployments: claimOf(payload, 'deployments'),
      nodes: claimOf(payload, 'nodes'),
      expiresAt: payload.exp === undefined ? undefined : payload.exp * 1000,
      subject: payload.sub,
    };
  };
  return Object.assign(verify, { configured: key !== undefined });
}

/**
 * One claim's ids: undefined for ["*"], empty when the claim is absent. A claim that is present
 * must be a non-empty array naming at least one valid id: a malformed claim refuses the token
 * rather than granting less than its issuer meant.
 */
function claimOf(payload: JWTPayload, name: 'deployments' | 'nodes'): ReadonlySet<string> | undefined {
  const claim = payload[name];
  if (claim === undefined) return new Set();
  if (!Array.isArray(claim) || claim.length === 0 || claim.length > 10_000)
    throw new FeedAuthError(`token's "${name}" claim must be a non-empty array of ids, or ["*"]`);
  if (claim.includes('*')) return undefined;
  const ids = new Set(claim.filter(isIdentifier));
  if (ids.size === 0) throw new FeedAuthError(`token's "${name}" claim names no valid id`);
  return ids;
}

export function allows(grant: Grant, deploymentId: string): boolean {
  return grant.deployments === undefined || grant.deployments.has(deploymentId);
}

export function allowsNode(grant: Grant, nodeId: string): boolean {
  return grant.nodes === undefined || grant.nodes.has(nodeId);
}
