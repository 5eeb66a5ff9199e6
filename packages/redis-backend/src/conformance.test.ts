import { describeBroker } from '@celeriac/core/testing';
import { redisFixture } from '../../../test/redis/helpers.js';

// The same suite the in-memory backend passes, against the Redis at CELERIAC_REDIS_URL
// (default redis://127.0.0.1:6379), under a key prefix of its own.
describeBroker('redis', (options) => redisFixture('conf', '', options));
