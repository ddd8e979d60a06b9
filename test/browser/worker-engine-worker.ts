/// <reference lib="webworker" />
/** The worker of test/browser/worker-engine.html: the library's one-line handler. */
import { serveEngineInWorker } from '../../index.ts';

serveEngineInWorker(self);
