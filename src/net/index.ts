export { hostAddress, refusedAddressReason } from './address-policy.js';
export { SAFE_FETCH_DEFAULTS, safeFetchImage, type HostResolver, type ResolvedAddress, type SafeFetchOptions, type UrlPolicy } from './safe-fetch.js';
