/**
 * Who may watch what: a JWT (HS256 with a shared secret, or any algorithm from a JWKS) whose
 * `deployments` claim lists the deployment ids the bearer may subscribe to ("*": all, for
 * operators). Verified with jose. FEED_AUTH=none disables it, explicitly and loudly.
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
  /** ms since epoch; undefined: no expiry. */
  readonly expiresAt: number | undefined;
  readonly subject: string | undefined;
}

export class FeedAuthError extends Error {}

export type FeedAuthenticator = ((token: string | undefined) => Promise<Grant>) & { readonly configured: boolean };

export function createFeedAuthenticator(config: FeedAuthConfig): FeedAuthenticator {
  if (config.mode === 'none') {
    return Object.assign(
      () => Promise.resolve<Grant>({ deployments: undefined, expiresAt: undefined, subject: undefined }),
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
    const claim = payload.deployments;
    if (!Array.isArray(claim) || claim.length === 0 || claim.length > 10_000) {
      throw new FeedAuthError('token has no "deployments" claim (a non-empty array of deployment ids, or ["*"])');
    }
    if (claim.includes('*'))
      return {
        deployments: undefined,
        expiresAt: payload.exp === undefined ? undefined : payload.exp * 1000,
        subject: payload.sub,
      };
    const deployments = new Set(claim.filter(isIdentifier));
    if (deployments.size === 0) throw new FeedAuthError('token names no valid deployment id');
    return { deployments, expiresAt: payload.exp === undefined ? undefined : payload.exp * 1000, subject: payload.sub };
  };
  return Object.assign(verify, { configured: key !== undefined });
}

export function allows(grant: Grant, deploymentId: string): boolean {
  return grant.deployments === undefined || grant.deployments.has(deploymentId);
}
