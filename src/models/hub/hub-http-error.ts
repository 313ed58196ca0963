import { ModelDownloadError } from '../../errors/model-download-error.js';
import { ModelNotFoundError } from '../../errors/model-not-found-error.js';
import { MODEL_ENV } from '../defaults.js';
import type { HubRequestContext } from './hub-request.js';

/** 429 after the retries allowed, or a Retry-After longer than the client may wait. */
export function rateLimitedError(url: string, what: string): ModelDownloadError {
  return new ModelDownloadError('rate_limited', `The hub rate-limits this client: GET ${url} ${what}.`, {
    hint: `Wait a few minutes and run the same command again (the download resumes); a token (${MODEL_ENV.hubToken}) raises the hub's limits.`,
  });
}

/**
 * The typed error for a hub answer that retrying cannot fix: 401/403 name HF_TOKEN and the repository page (gated
 * repositories and refused tokens said apart), 404 says whether the repository, the revision or the file is
 * missing (from the hub's X-Error-Code), anything else is an `http_error`.
 */
export function hubHttpError(response: Response, url: string, context: HubRequestContext, request: { what: 'listing' | 'file'; file?: string }): Error {
  const { repo, revision, endpoint } = context;
  const code = response.headers.get('x-error-code') ?? '';
  const hubMessage = response.headers.get('x-error-message') ?? '';
  const page = `${endpoint.url}/${repo}`;
  const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  if (response.status === 401 || response.status === 403) {
    if (/invalid (credentials|username or password)|invalid token/i.test(hubMessage)) {
      return new ModelDownloadError('unauthorized', `The hub at ${endpoint.url} refused the token in ${MODEL_ENV.hubToken} (${status}: ${hubMessage}).`, {
        hint: `Set ${MODEL_ENV.hubToken} to a valid read token (https://huggingface.co/settings/tokens), or unset it for public repositories.`,
      });
    }
    const gated = code === 'GatedRepo' || /gated/i.test(hubMessage);
    const why = gated
      ? `is gated: accept its conditions on ${page} while logged in`
      : context.token
        ? `is private or gated, and the token in ${MODEL_ENV.hubToken} may not read it`
        : `is private or gated, or does not exist`;
    return new ModelDownloadError('unauthorized', `GET ${url} answered ${status}: the repository ${repo} ${why}.`, {
      hint: `Check ${page}, and set ${MODEL_ENV.hubToken} to a token with read access to it (https://huggingface.co/settings/tokens).`,
    });
  }
  if (response.status === 404) {
    if (code === 'RevisionNotFound') {
      return new ModelNotFoundError('missing_revision', `The repository ${repo} has no revision "${revision}" on ${endpoint.url}.`, {
        hint: `Name a branch, tag or commit that exists (see ${page}/tree/main), or leave the revision out for main.`,
      });
    }
    if (code === 'EntryNotFound' || (code === '' && request.what === 'file')) {
      return new ModelNotFoundError('missing_file', `The repository ${repo} at revision ${revision} has no file ${request.file ?? url} (${endpoint.url}).`, {
        hint: `See ${page}/tree/${encodeURIComponent(revision)} for the files it holds.`,
      });
    }
    const what = code === 'RepoNotFound' || revision === 'main' ? `the repository ${repo}` : `the repository ${repo} or its revision "${revision}"`;
    return new ModelNotFoundError(code === 'RepoNotFound' || revision === 'main' ? 'missing_repo' : 'missing_revision', `The hub at ${endpoint.url} has no ${what.replace(/^the /, '')}.`, {
      hint: `Check the id (${page})${endpoint.url === 'https://huggingface.co' ? '' : `, and that the endpoint from ${endpoint.setting} serves it`}; a private repository also needs ${MODEL_ENV.hubToken}.`,
    });
  }
  return new ModelDownloadError('http_error', `GET ${url} answered ${status}${hubMessage ? ` (${hubMessage})` : ''}.`, {
    hint: `Check the repository (${page}) and the hub address (${endpoint.url}, from ${endpoint.setting}).`,
  });
}
