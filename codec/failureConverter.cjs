// Failures' messages and stack traces go into an encoded payload, so the codec encrypts them too. Temporal loads
// this module by path (DataConverter.failureConverterPath): bundled into the workflow code and required by clients
// and workers, hence plain CommonJS.
const { DefaultFailureConverter } = require('@temporalio/common');

module.exports = { failureConverter: new DefaultFailureConverter({ encodeCommonAttributes: true }) };
