/**
 * Ed25519 through WebCrypto (crypto.subtle, algorithm "Ed25519"), and the signed envelopes of
 * docs/protocol.md ("Signed envelopes"): the exact text signed for a mutation and for a token
 * renewal.
 */
import { canonicalize } from './jcs';
import { fromBase64Url, toBase64Url, utf8 } from './encoding';

export const ED25519 = { name: 'Ed25519' } as const;

export interface DeviceKeys {
  /** Non-extractable; kept in IndexedDB by structured clone. */
  readonly privateKey: CryptoKey;
  /** The raw 32 bytes, base64url (43 characters). */
  readonly publicKey: string;
}

export async function generateDeviceKeys(): Promise<DeviceKeys> {
  const pair = (await crypto.subtle.generateKey(ED25519, false, ['sign', 'verify'])) as CryptoKeyPair;
  const raw = await crypto.subtle.exportKey('raw', pair.publicKey);
  return { privateKey: pair.privateKey, publicKey: toBase64Url(raw) };
}

/** Imports a private key from its 32-byte seed and public key (both base64url), e.g. a test vector's. */
export async function importPrivateKey(seed: string, publicKey: string, extractable = false): Promise<CryptoKey> {
  return crypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', d: seed, x: publicKey }, ED25519, extractable, ['sign']);
}

export async function signText(key: CryptoKey, text: string): Promise<string> {
  const sig = await crypto.subtle.sign(ED25519, key, utf8(text) as BufferSource);
  return toBase64Url(sig);
}

export async function verifyText(publicKey: string, text: string, signature: string): Promise<boolean> {
  const key = await crypto.subtle.importKey('raw', fromBase64Url(publicKey) as BufferSource, ED25519, false, ['verify']);
  return crypto.subtle.verify(ED25519, key, fromBase64Url(signature) as BufferSource, utf8(text) as BufferSource);
}

/** "civicsync-mutation-v1\n" + tenantId + "\n" + deviceId + "\n" + JCS(mutation without signature). */
export function mutationSigningInput(tenantId: string, deviceId: string, mutation: Record<string, unknown>): string {
  const { signature: _omit, ...content } = mutation;
  return 'civicsync-mutation-v1\n' + tenantId + '\n' + deviceId + '\n' + canonicalize(content);
}

/** "civicsync-token-v1\n" + tenantId + "\n" + deviceId + "\n" + challenge. */
export function tokenSigningInput(tenantId: string, deviceId: string, challenge: string): string {
  return 'civicsync-token-v1\n' + tenantId + '\n' + deviceId + '\n' + challenge;
}

/** The mutation with its signature member set (replacing any it had). */
export async function signMutation<M extends Record<string, unknown>>(
  key: CryptoKey,
  tenantId: string,
  deviceId: string,
  mutation: M,
): Promise<M & { signature: string }> {
  const { signature: _omit, ...content } = mutation;
  const signature = await signText(key, mutationSigningInput(tenantId, deviceId, content));
  return { ...(content as M), signature };
}
