import { describe, expect, it } from 'vitest';
import { redactUrl } from './connect.js';

describe('redactUrl', () => {
  it('hides every secret a broker URL can carry, and nothing else', () => {
    expect(redactUrl('amqp://guest:guest@127.0.0.1:5672')).toBe('amqp://guest:***@127.0.0.1:5672');
    expect(redactUrl('redis://sometoken@h:6379')).toBe('redis://***@h:6379'); // a user name alone is a token
    expect(redactUrl('amqps://u:p@h/?cert=/c.pem&key=/k.pem&passphrase=s3cret')).toBe('amqps://u:***@h/?cert=%2Fc.pem&key=%2Fk.pem&passphrase=***');
    expect(redactUrl('redis://h:6379?password=zz&token=t&prefix=app')).toBe('redis://h:6379?password=***&token=***&prefix=app');
    expect(redactUrl('redis://127.0.0.1:6379?prefix=app')).toBe('redis://127.0.0.1:6379?prefix=app');
    expect(redactUrl('not a url')).toBe('(unparseable URL)');
  });
});
