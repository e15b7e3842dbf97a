// Reference echo server for herald's side-by-side benchmark (bench/run): gRPC C++ callback API on Debian's
// libgrpc++-dev, plaintext h2c, bound to 127.0.0.1 only. The library's own callback executor serves every call;
// the handler echoes the payload and finishes inline.
//
// Usage: cpp-echo-server --port N      (N = 0 picks a free port)
// Prints "LISTENING <port>" on stdout once the server accepts calls; SIGTERM or SIGINT shuts it down.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "echo.grpc.pb.h"

namespace {

class EchoService final : public bench::Echo::CallbackService {
  grpc::ServerUnaryReactor* Call(grpc::CallbackServerContext* context, const bench::Msg* request,
                                 bench::Msg* response) override {
    response->set_payload(request->payload());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

[[noreturn]] void Usage(const char* program) {
  std::fprintf(stderr, "usage: %s --port N\n", program);
  std::exit(2);
}

int ParsePort(int argc, char** argv) {
  const char* value = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      value = argv[++i];
    } else if (std::strncmp(argv[i], "--port=", 7) == 0) {
      value = argv[i] + 7;
    } else {
      Usage(argv[0]);
    }
  }
  if (value == nullptr || *value == '\0') Usage(argv[0]);
  char* end = nullptr;
  long port = std::strtol(value, &end, 10);
  if (*end != '\0' || port < 0 || port > 65535) Usage(argv[0]);
  return static_cast<int>(port);
}

}  // namespace

int main(int argc, char** argv) {
  const int port = ParsePort(argc, argv);

  // Block the stop signals before gRPC starts its threads (they inherit the mask); one thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  EchoService service;
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(), &bound_port);
  // gRPC sets SO_REUSEPORT by default; without it a port still held by another server fails loudly instead of
  // silently sharing the load.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    std::fprintf(stderr, "cpp-echo-server: cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  std::printf("LISTENING %d\n", bound_port);
  std::fflush(stdout);

  std::thread stopper([&server, &stop_signals] {
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  });
  server->Wait();
  stopper.join();
  return 0;
}
