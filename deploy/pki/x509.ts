/** @peculiar/x509 wired to Node's WebCrypto: the one place that loads it. */
// reflect-metadata must be loaded before @peculiar/x509: its ASN.1 schemas read decorator metadata at load.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

// The lib's `Crypto` is the DOM type, which this Node-only project does not load.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
export const subtle = webcrypto.subtle;
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
