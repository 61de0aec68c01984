import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { findAddresses, findSecrets, logPlaces, textSecret } from './secrets.js';

describe('leaks: the search finds every form it looks for', () => {
  const key = new Uint8Array(randomBytes(32));
  const secret = { name: 'key', bytes: key };
  const b = Buffer.from(key);

  it('finds a key as hex in either case, base64 or base64url at any alignment, or raw bytes', () => {
    const forms = [
      b.toString('hex'),
      b.toString('hex').toUpperCase(),
      ...[0, 1, 2].flatMap((k) => {
        const padded = Buffer.concat([randomBytes(k), b, randomBytes(5)]);
        return [padded.toString('base64'), padded.toString('base64url')];
      }),
    ];
    for (const form of forms)
      assert.equal(
        findSecrets(logPlaces([`{"x":"${form}"}`], 'test'), [secret]).length > 0,
        true,
        form,
      );
    const bytea = Buffer.concat([randomBytes(7), b, randomBytes(3)]);
    assert.deepEqual(findSecrets([{ where: 'cell', text: 'opaque', bytes: bytea }], [secret]), [
      'key (raw bytes) in cell',
    ]);
    assert.deepEqual(
      findSecrets(logPlaces([randomBytes(64).toString('hex')], 'test'), [secret]),
      [],
    );
  });

  it('finds text secrets and every IP form, and nothing in clean lines', () => {
    const address = textSecret('address', '1 High Street');
    assert.equal(findSecrets(logPlaces(['{"a":"1 HIGH STREET"}'], 't'), [address]).length, 1);
    for (const ip of ['127.0.0.1', '::1', '::ffff:10.0.0.1', '[::1]:443', '10.20.30.40'])
      assert.ok(findAddresses(logPlaces([`{"remote":"${ip}"}`], 't')).length > 0, ip);
    assert.deepEqual(
      findAddresses(logPlaces(['{"level":30,"ms":1.25,"route":"/v1/presence","v":"1.2.3"}'], 't')),
      [],
    );
  });
});
