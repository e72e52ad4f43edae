// The CLI's view of the coordinator: where it is (home, flags, environment) and its HTTP API.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace capstan::cli {

// Options every command accepts.
struct Globals {
  std::filesystem::path home; // --home, CAPSTAN_HOME, ~/.capstan
  std::string server;         // --server, CAPSTAN_SERVER
  std::string token;          // --token, CAPSTAN_TOKEN
  std::string output;         // -o
  std::string user;           // --user, CAPSTAN_USER, HOME/config.json "user", the login name
};

// Who the CLI acts as (sent as X-Capstan-User, recorded in the audit trail and on approvals).
std::string user_name(const Globals& globals);

// A failure to show the user: the message (and problem lines), and the exit code.
class CommandError : public std::runtime_error {
public:
  CommandError(std::string message, int exit_code, std::vector<std::string> details = {})
      : std::runtime_error(std::move(message)), exit_code_(exit_code),
        details_(std::move(details)) {}
  int exit_code() const { return exit_code_; }
  const std::vector<std::string>& details() const { return details_; }

private:
  int exit_code_;
  std::vector<std::string> details_;
};

std::filesystem::path default_home();

class ApiClient {
public:
  // Finds the coordinator: --server/--token, else CAPSTAN_SERVER/CAPSTAN_TOKEN, else the
  // endpoint file `capstan up` left under the home. Throws CommandError when there is none.
  explicit ApiClient(const Globals& globals);
  ~ApiClient();

  const std::string& url() const { return url_; }

  // Throws CommandError naming the address for transport failures and carrying the API's
  // message for error responses (exit 2 for 400/422, 1 otherwise).
  nlohmann::json get(const std::string& path, int read_timeout_seconds = 30);
  nlohmann::json post(const std::string& path, const nlohmann::json& body,
                      int read_timeout_seconds = 60);
  nlohmann::json del(const std::string& path);
  // GET whose answer is not JSON: the body of a 200 answer goes to `sink` as it arrives (false
  // from it stops and returns false); an error answer throws CommandError as get() does, and so
  // does an answer cut short.
  bool download(const std::string& path, const std::function<bool(const char*, std::size_t)>& sink,
                int read_timeout_seconds = 300);

private:
  nlohmann::json handle(const std::string& method, const std::string& path, int status,
                        const std::string& body);
  std::string url_;
  std::string token_;
  std::string user_;
  std::string hint_; // what to do when the coordinator cannot be reached
};

} // namespace capstan::cli
