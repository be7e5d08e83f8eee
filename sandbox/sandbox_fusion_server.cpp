#include "sandbox/sandbox_fusion_server.hpp"

#include "common/json.hpp"
#include "sandbox/sandbox_fusion_protocol.hpp"

namespace torl::sandbox {

namespace {

HttpResponse json_response(int status, std::string body) { return {status, "application/json", std::move(body)}; }

HttpResponse json_error(int status, const std::string& message) {
  return json_response(status, nlohmann::json{{"error", message}}.dump(-1, ' ', false, Json::error_handler_t::replace));
}

// The answer to one request; POST /run_code answers once the runner has run the code.
void answer(CodeRunner& runner, HttpRequest request, HttpServer::Respond respond) {
  if (request.path == "/v1/ping") return respond({200, "text/plain", "pong"});
  if (request.path != "/run_code") {
    return respond(json_error(
        404, "no such path '" + request.path + "'; this server answers POST /run_code and GET /v1/ping"));
  }
  if (request.method != "POST") return respond(json_error(405, "/run_code takes POST"));
  auto run = parse_run_code_request(request.body);
  if (!run) return respond(json_error(400, run.status().message()));
  if (run->language != "python") {
    return respond(json_response(
        200, sandbox_error_response_body("unsupported language '" + run->language + "'; this server runs python only")));
  }
  runner.submit(std::move(run->code), [respond = std::move(respond)](ExecutionResult result) {
    respond(json_response(200, run_code_response_body(result)));
  });
}

}  // namespace

Expected<std::unique_ptr<SandboxFusionServer>> SandboxFusionServer::start(const std::string& listen,
                                                                          CodeRunner& runner) {
  auto http = HttpServer::start(listen, [&runner](HttpRequest request, HttpServer::Respond respond) {
    answer(runner, std::move(request), std::move(respond));
  });
  if (!http) return http.status().with_context("torl sandbox serve --listen " + listen);
  return std::unique_ptr<SandboxFusionServer>(new SandboxFusionServer(std::move(*http)));
}

}  // namespace torl::sandbox
