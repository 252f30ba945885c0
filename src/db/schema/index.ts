export * from './principals.js';
export * from './customers.js';
export * from './activity.js';
export * from './audit.js';
export * from './exports.js';
