// Run from the repository root: `npm run test:features` (cucumber-js --config features/cucumber.mjs).
// Step definitions are compiled by `tsc -b` into features/dist.
export default {
  paths: ['features/**/*.feature'],
  import: ['features/dist/**/*.js'],
  format: ['progress-bar', 'summary'],
  tags: 'not @wip',
  strict: true,
};
