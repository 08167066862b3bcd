// @ts-check
// GrowthBook's edge worker (@growthbook/edge-cloudflare, the package's own handleRequest) for the
// peer comparison. Configured the way its README deploys it, through env vars
// (PROXY_TARGET, GROWTHBOOK_API_HOST, GROWTHBOOK_CLIENT_KEY, PERSIST_UUID; see run.mjs): it fetches
// the features/experiments payload from GROWTHBOOK_API_HOST (here a loopback stand-in for
// cdn.growthbook.io serving the workload's 20 experiments) and keeps it in the isolate's memory.
//
// GrowthBook's edge app derives only id (gbuuid cookie), browser, deviceType, url, path, host and
// query itself; the workload also targets country, language and plan, which a GrowthBook user
// passes as `attributes` in the config override. The Cohort worker derives the same three from
// request.cf, Accept-Language and the site's `plan` cookie, so both workers see the same visitor.
import { handleRequest } from "@growthbook/edge-cloudflare";

export default {
  async fetch(request, env) {
    const cookie = request.headers.get("cookie") ?? "";
    const plan = /(?:^|;\s*)plan=([^;]*)/.exec(cookie)?.[1];
    const language = (request.headers.get("accept-language") ?? "").split(",")[0].split(";")[0].trim();
    const attributes = { country: request.cf?.country, language };
    if (plan !== undefined) attributes.plan = plan;
    return handleRequest(request, env, { attributes });
  },
};
