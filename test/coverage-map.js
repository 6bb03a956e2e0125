// tap's coverage map: every test file is measured for its coverage of the plugin, the product, and of nothing else
// (the demo blog, the helpers and the stress harness are exercised too, but they are not what the 100% goal is for).
export default () => 'plugin/**/*.ts'
