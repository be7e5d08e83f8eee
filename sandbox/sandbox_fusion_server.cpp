#include "sandbox/sandbox_fusion_server.hpp"

#include "common/json.hpp"
#include "sandbox/sandbox_fusion_protocol.hpp"

namespace torl::sandbox {

namespace {

std::string dump(const nlohmann::ordered_json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

HttpResponse json_response(int status, std::string body) { return {status, "application/json", std::move(body)}; }

// FastAPI's answer for a path or method it does not serve.
HttpResponse detail_response(int status, const char* detail) {
  return json_response(status, dump({{"detail", detail}}));
}

nlohmann::ordered_json status_json(const RunnerLoad& load, size_t in_flight) {
  return {{"workers", load.workers},
          {"running", load.running},
          {"queued", load.queued},
          {"requests_in_flight", in_flight},
          {"executions", load.executions},
          {"latency_p50_ms", load.latency_p50_ms},
          {"latency_p99_ms", load.latency_p99_ms},
          {"max_queue", load.max_queue},
          {"timeout_ms", load.timeout_ms},
          {"memory_mb", load.memory_mb}};
}

}  // namespace

Expected<std::unique_ptr<SandboxFusionServer>> SandboxFusionServer::start(const std::string& listen,
                                                                          CodeRunner& runner, std::string pod_name) {
  std::unique_ptr<SandboxFusionServer> server(new SandboxFusionServer());
  server->state_.reset(new State{runner, std::move(pod_name)});
  State& state = *server->state_;
  // The answer to one request; POST /run_code answers once the runner has run the code.
  auto answer = [&state](HttpRequest request, HttpServer::Respond respond) {
    std::string path = request.path;
    if (path.size() > 1 && path.back() == '/') path.pop_back();  // FastAPI redirects /run_code/ here
    if (path == "/v1/ping" || path == "/v1/status") {
      if (request.method != "GET") return respond(detail_response(405, "Method Not Allowed"));
      if (path == "/v1/ping") return respond(json_response(200, "\"pong\""));
      return respond(json_response(200, dump(status_json(state.runner.load(), state.in_flight))));
    }
    if (path != "/run_code") return respond(detail_response(404, "Not Found"));
    if (request.method != "POST") return respond(detail_response(405, "Method Not Allowed"));
    ParsedRunCodeRequest parsed = parse_run_code_request(request.body);
    if (!parsed.ok()) return respond(json_response(422, validation_error_body(parsed.problems)));
    if (parsed.request.language != "python") {
      return respond(json_response(200, sandbox_error_response_body("language '" + parsed.request.language +
                                                                        "' is not supported by torl sandbox serve, "
                                                                        "which runs python only",
                                                                    state.pod_name)));
    }
    ++state.in_flight;
    state.runner.submit(to_run_request(std::move(parsed.request)),
                        [&state, respond = std::move(respond)](ExecutionResult result) {
                          --state.in_flight;
                          respond(json_response(200, run_code_response_body(result, state.pod_name)));
                        });
  };
  auto http = HttpServer::start(listen, std::move(answer));
  if (!http) return http.status().with_context("torl sandbox serve --listen " + listen);
  server->http_ = std::move(*http);
  return server;
}

}  // namespace torl::sandbox
