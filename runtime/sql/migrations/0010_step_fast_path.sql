-- The step fast path: fewer statements per step (see docs/runtime.md, Performance).
SELECT 1;
