vcl 4.1;

# Varnish in front of the demo blog, with the xkey vmod (Debian: varnish and varnish-modules):
#   EDGE_PURGE_URL=http://127.0.0.1:6081/ npm start
#   varnishd -F -a 127.0.0.1:6081 -f demo-blog/varnish/default.vcl -s malloc,64m
# The blog tags every page fastify-cache stores or serves (`surrogate-key`: the prefix, the page key, its tags) and
# sends `PURGE` with an `xkey` header after each purge. The tests run this file with the backend's port replaced.

import std;
import xkey;

backend default {
    .host = "127.0.0.1";
    .port = "3000";
}

# Who may purge: this machine only.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (req.http.xkey) {
            set req.http.n-gone = xkey.purge(req.http.xkey);
            return (synth(200, "Invalidated " + req.http.n-gone + " objects"));
        }
        if (req.http.xkey-soft) {
            # Soft: expired at once, but kept for grace and for conditional requests.
            set req.http.n-gone = xkey.softpurge(req.http.xkey-soft);
            return (synth(200, "Expired " + req.http.n-gone + " objects"));
        }
        return (synth(400, "PURGE needs an xkey or xkey-soft header"));
    }
    # Anything else falls through to the built-in rules: a request with a cookie or credentials is passed.
}

sub vcl_backend_response {
    # Only what fastify-cache stored or served is cacheable here: it alone carries surrogate keys. A bypass (a logged-in
    # admin, a page that set a cookie) never does.
    if (!beresp.http.surrogate-key) {
        set beresp.uncacheable = true;
        set beresp.ttl = 120s;
        return (deliver);
    }
    set beresp.http.xkey = beresp.http.surrogate-key;
    # The plugin's ttl (edge.controlHeader); the response's Age has already been taken off by Varnish.
    if (beresp.http.surrogate-control ~ "(?i)max-age=[0-9]+") {
        set beresp.ttl = std.duration(regsub(beresp.http.surrogate-control, "(?i)^.*max-age=([0-9]+).*$", "\1") + "s", 0s);
    }
}

sub vcl_deliver {
    # Keys and the edge ttl are for this cache, not for browsers (as Fastly strips them).
    unset resp.http.xkey;
    unset resp.http.surrogate-key;
    unset resp.http.surrogate-control;
}
