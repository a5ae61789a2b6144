/**
 * Sessions on the default in-memory store: the tests of test/session-cases.ts (the same ones
 * run on a `RedisStore` in test/sessions-redis.test.ts).
 */
import { sessionCases } from "./session-cases.ts";

sessionCases();
