/**
 * Vitest global setup: gives every test file of one `vitest run` the same run id
 * (`inject('testRunId')`), so that work shared between files, such as the demo build in
 * demo-site.ts, is done once per run and redone on the next.
 */
import { randomUUID } from 'node:crypto';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    testRunId: string;
  }
}

export default function setup(project: TestProject): void {
  project.provide('testRunId', randomUUID());
}
