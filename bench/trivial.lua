-- wrk script: the client's own ceiling against a trivial endpoint.
wrk.method = "GET"
wrk.path = "/healthz"
