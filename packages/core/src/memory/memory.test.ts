import { describeBroker } from '../testing/index.js';
import { MemoryBroker } from './broker.js';

describeBroker('memory', async () => {
  const broker = new MemoryBroker();
  return {
    broker,
    injectRaw: async (queue, raw) => broker.injectRaw(queue, raw),
    close: () => broker.close(),
  };
});
