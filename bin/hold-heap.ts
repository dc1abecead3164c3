/** Imported first by the entry point, so that it runs before the rest of the bundle is initialised (bin/heap.ts). */
import { holdYoungGeneration } from './heap.js';

holdYoungGeneration();
