/**
 * The environment for a process a test starts through tsx: the test's own, with tap's coverage off (its processinfo
 * hook reads `_TAPJS_PROCESSINFO_COVERAGE_`; NODE_V8_COVERAGE is dropped as well). tap measures the
 * coverage of what its test processes load; a child's coverage of the same files, as tsx compiled them, does not line
 * up with theirs when the two are merged, and turns the report into noise (a file run by every test showed 73%).
 */
export function childEnv (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra }
  delete env.NODE_V8_COVERAGE
  env._TAPJS_PROCESSINFO_COVERAGE_ = '0'
  return env
}
