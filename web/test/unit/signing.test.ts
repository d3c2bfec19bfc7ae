import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/sync/jcs';
import { fromBase64Url, toBase64Url } from '../../src/sync/encoding';
import { generateDeviceKeys, importPrivateKey, mutationSigningInput, signMutation, signText, tokenSigningInput, verifyText } from '../../src/sync/signing';
import { formatHlc, parseHlc, receiveHlc, tickHlc } from '../../src/sync/hlc';
import { CONTRACTS, readJson } from './repo';

interface Vectors {
  keyPair: { privateKeySeed: string; publicKey: string };
  mutation: { tenantId: string; deviceId: string; mutation: Record<string, unknown>; signingInput: string; signature: string; contentDigest: string };
  token: { tenantId: string; deviceId: string; challenge: string; signingInput: string; signature: string };
}

const v = readJson<Vectors>(CONTRACTS + 'vectors/signatures-v1.json');

async function sha256Hex(text: string): Promise<string> {
  const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join('');
}

describe('signed envelopes (vectors/signatures-v1.json)', () => {
  it('builds the exact mutation signing text, 543 UTF-8 bytes', () => {
    const text = mutationSigningInput(v.mutation.tenantId, v.mutation.deviceId, v.mutation.mutation);
    expect(text).toBe(v.mutation.signingInput);
    expect(new TextEncoder().encode(text).length).toBe(543);
  });

  it('canonical content hashes to the vector digest', async () => {
    const { signature: _s, ...content } = v.mutation.mutation;
    expect(await sha256Hex(canonicalize(content))).toBe(v.mutation.contentDigest);
  });

  it('signs the mutation with the vector key to the vector signature', async () => {
    const key = await importPrivateKey(v.keyPair.privateKeySeed, v.keyPair.publicKey);
    expect(key.extractable).toBe(false);
    const signed = await signMutation(key, v.mutation.tenantId, v.mutation.deviceId, v.mutation.mutation);
    expect(signed.signature).toBe(v.mutation.signature);
    expect(await verifyText(v.keyPair.publicKey, v.mutation.signingInput, v.mutation.signature)).toBe(true);
  });

  it('signs the token challenge to the vector signature', async () => {
    const key = await importPrivateKey(v.keyPair.privateKeySeed, v.keyPair.publicKey);
    const text = tokenSigningInput(v.token.tenantId, v.token.deviceId, v.token.challenge);
    expect(text).toBe(v.token.signingInput);
    expect(await signText(key, text)).toBe(v.token.signature);
  });

  it('the signature fails for another tenant, device, deviceSeq or clinicId', async () => {
    const m = v.mutation.mutation;
    const pk = v.keyPair.publicKey;
    const sig = v.mutation.signature;
    expect(await verifyText(pk, mutationSigningInput('other', v.mutation.deviceId, m), sig)).toBe(false);
    expect(await verifyText(pk, mutationSigningInput(v.mutation.tenantId, '00000000-0000-4000-8000-000000000000', m), sig)).toBe(false);
    expect(await verifyText(pk, mutationSigningInput(v.mutation.tenantId, v.mutation.deviceId, { ...m, deviceSeq: 42 }), sig)).toBe(false);
    const data = { ...(m['data'] as Record<string, unknown>), clinicId: 'clinic-x' };
    expect(await verifyText(pk, mutationSigningInput(v.mutation.tenantId, v.mutation.deviceId, { ...m, data }), sig)).toBe(false);
  });

  it('a generated device key is non-extractable and its public key is 43 base64url characters', async () => {
    const keys = await generateDeviceKeys();
    expect(keys.privateKey.extractable).toBe(false);
    expect(keys.publicKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await expect(crypto.subtle.exportKey('pkcs8', keys.privateKey)).rejects.toThrow();
    const sig = await signText(keys.privateKey, 'hello');
    expect(sig).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(await verifyText(keys.publicKey, 'hello', sig)).toBe(true);
  });
});

describe('JCS (RFC 8785)', () => {
  it('matches the canonical form of the first mutation of push-request.clinic-day.json', async () => {
    const push = readJson<{ mutations: Record<string, unknown>[] }>(CONTRACTS + 'examples/push-request.clinic-day.json');
    const { signature: _s, ...content } = push.mutations[0]!;
    const text = canonicalize(content);
    expect(text).toBe(
      '{"baseVersion":0,"clientTime":"2026-11-22T07:12:44.120Z","collection":"appointments","data":{"clinicId":"clinic-badulla-03","notes":["first visit"],"patientName":"Nimali Perera","patientPhone":"+94771234567","slotStart":"2026-11-23T09:30:00+05:30","status":"booked"},"deviceSeq":41,"hlc":"001795331564120-00000-3f2a1b0c-9d8e-4f7a-a6b5-c4d3e2f1a0b9","mutationId":"0b6f4c3e-2f1d-4f6a-9a55-3d9e8b1c7a01","op":"create","recordId":"6a1f0c52-8d3b-4e7f-b2a9-5c4d3e2f1a10"}',
    );
    expect(await sha256Hex(text)).toBe('d7085c4ec03d52cc33bfcd1b1a9cbcb1db0f54917ccb8d008216f4eb22e47aba');
  });

  it('writes numbers as ECMAScript does and escapes strings minimally', () => {
    expect(canonicalize({ b: 1.0, a: -0, c: 1e21, d: 0.000001, e: 1e-7, f: 333333333.33333329 })).toBe(
      '{"a":0,"b":1,"c":1e+21,"d":0.000001,"e":1e-7,"f":333333333.3333333}',
    );
    expect(canonicalize({ s: '\u0000\u001f"\\/\u2028é€😀' })).toBe('{"s":"\\u0000\\u001f\\"\\\\/\u2028é€😀"}');
    expect(() => canonicalize({ x: Number.NaN })).toThrow();
  });

  it('sorts members by UTF-16 code units, nested too', () => {
    expect(canonicalize({ '\u20ac': 1, '\r': 2, '\ud83d\ude00': 3, '1': 4, 'é': 5, a: { z: [{ y: 1, x: 2 }], b: null } })).toBe(
      '{"\\r":2,"1":4,"a":{"b":null,"z":[{"x":2,"y":1}]},"é":5,"€":1,"😀":3}',
    );
  });

  it('base64url round-trips without padding', () => {
    const bytes = new Uint8Array([251, 255, 190, 0, 1]);
    expect(toBase64Url(bytes)).toBe('-_--AAE');
    expect(Array.from(fromBase64Url('-_--AAE'))).toEqual(Array.from(bytes));
  });
});

describe('hybrid logical clock', () => {
  const dev = '3f2a1b0c-9d8e-4f7a-a6b5-c4d3e2f1a0b9';
  it('uses the wall clock when it moved on, else advances the counter', () => {
    const a = tickHlc(undefined, 1795331564120, dev);
    expect(formatHlc(a)).toBe('001795331564120-00000-' + dev);
    const b = tickHlc(a, 1795331564000, dev); // the clock stepped back
    expect(formatHlc(b)).toBe('001795331564120-00001-' + dev);
    expect(formatHlc(b) > formatHlc(a)).toBe(true);
    const c = tickHlc(parseHlc('001795331564120-99999-' + dev), 1, dev);
    expect(formatHlc(c)).toBe('001795331564121-00000-' + dev);
  });
  it('moves past a remote reading', () => {
    const r = receiveHlc(tickHlc(undefined, 10, dev), parseHlc('000000000000050-00003-other'), 20, dev);
    expect(formatHlc(r)).toBe('000000000000050-00004-' + dev);
  });
});
