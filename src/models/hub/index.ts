export { downloadHubSnapshot } from './download-hub-snapshot.js';
export { selectCheckpointFiles, CHECKPOINT_SIDE_FILES, CHECKPOINT_WEIGHTS } from './select-checkpoint-files.js';
export { parseHubEndpoint, type HubEndpoint } from './hub-endpoint.js';
export { scopedFetch, type ScopedFetchOptions, type ScopedResponse, type HubHeaders } from './scoped-fetch.js';
export type { DownloadHubSnapshotOptions, HubFile, HubFileSelection, HubRetryOptions, HubSnapshot } from './hub-types.js';
