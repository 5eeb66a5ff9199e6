import { describeBroker } from '../testing/index.js';
import { MemoryBroker } from './broker.js';

describeBroker('memory', async (options) => {
  const broker = new MemoryBroker(options);
  return {
    broker,
    injectRaw: async (queue, raw) => broker.injectRaw(queue, raw),
    close: () => broker.close(),
  };
});
