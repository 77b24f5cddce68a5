// The admin token and the API calls that carry it.
//
// The token lives in sessionStorage (this tab only, gone when it closes) and travels solely
// in the Authorization header of same-origin fetch calls: never in a URL, never in a cookie.

const TOKEN_KEY = "gatetrace.adminToken";

export class AuthError extends Error {}

// the answer came after a navigation, search or logout that made it moot
export class Superseded extends Error {}

export class ApiError extends Error {
  constructor(status, message) {
    super(`${status}: ${message}`);
    this.status = status;
  }
}

export const token = () => sessionStorage.getItem(TOKEN_KEY);
export const keepToken = (value) => sessionStorage.setItem(TOKEN_KEY, value);
export const forgetToken = () => sessionStorage.removeItem(TOKEN_KEY);

// bumped by every navigation, search and logout: answers to older calls are dropped
let generation = 0;
export const supersede = () => {
  generation += 1;
};

// GET a JSON document; AuthError on 401, ApiError with the server's message otherwise
export async function api(path, bearer = token()) {
  const calledIn = generation;
  const response = await fetch(path, {
    // no token on the read-only query port: no Authorization header at all
    headers: bearer
      ? { Authorization: `Bearer ${bearer}`, Accept: "application/json" }
      : { Accept: "application/json" },
    cache: "no-store",
    credentials: "omit",
    referrerPolicy: "no-referrer",
  });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (calledIn !== generation) throw new Superseded(path);
  if (response.status === 401) throw new AuthError("the admin token was refused");
  if (!response.ok) {
    const jaegerError = body && body.errors && body.errors[0] && body.errors[0].msg;
    throw new ApiError(response.status, jaegerError || (body && body.error) || response.statusText);
  }
  return body;
}

// whether the page is served by the read-only query port (GET mode.json, no token): then
// the API needs no token and there is no admin route; false on the admin port or any error
export async function readOnlyPort() {
  try {
    const response = await fetch("mode.json", { cache: "no-store", credentials: "omit" });
    return response.ok && (await response.json()).readOnly === true;
  } catch (_) {
    return false;
  }
}
