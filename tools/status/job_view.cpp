#include "job_view.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "cli/json.hpp"
#include "cli/output.hpp"
#include "cli/table.hpp"
#include "queue/client.hpp"
#include "util/log.hpp"
#include "util/names.hpp"
#include "util/text.hpp"
#include "util/time.hpp"

namespace workq::status {

std::size_t show_jobs(redis::Connection& connection, const std::string& namespace_name,
                      const std::vector<std::string>& ids, bool json) {
    std::size_t unknown = 0;
    queue::NamespaceKeys keys(namespace_name);
    // Malformed ids are unknown too (contract §8), but never sent to the server.
    std::vector<std::string> valid;
    for (const auto& id : ids)
        if (!job_id_problem(id)) valid.push_back(id);
    auto found = queue::find_jobs(connection, keys, valid, false);
    std::size_t next = 0;
    for (const auto& id : ids) {
        std::optional<queue::JobInfo> info;
        if (!job_id_problem(id)) info = std::move(found[next++]);
        if (!info) {
            ++unknown;
            log::error(fmt::format("unknown job id '{}'", printable(id)));
        } else if (!info->damage.empty()) {
            // Shown with what can be read of it; the exit status says something was wrong.
            ++unknown;
            log::error(fmt::format("job {} in queue {} is damaged: {} (README, \"Damaged data\")",
                                   id, info->queue, printable(info->damage, 300)));
        }
        if (json) {
            // A malformed id may hold any bytes: JSON gets its printable form.
            boost::json::object object{{"id", is_valid_utf8(id) ? id : printable(id)}};
            if (!info) {
                // The same members as for a known job, so that `jq .attempts` never fails.
                object["queue"] = nullptr;
                object["state"] = "unknown";
                for (const char* name :
                     {"attempts", "max_attempts", "result", "error", "priority", "created_at",
                      "started_at", "finished_at", "due_at", "lease_expires_at", "worker"})
                    object[name] = nullptr;
                object["cancel_requested"] = false;
                object["damaged"] = nullptr;
                cli::print_json_line(object);
                continue;
            }
            object["queue"] = info->queue;
            object["state"] = std::string(queue::to_string(info->state));
            object["attempts"] = info->attempts;
            object["max_attempts"] = info->max_attempts;
            cli::put_bytes(object, "result", info->result);
            object["result_truncated"] = info->result_truncated;
            object["error"] =
                info->error.empty() ? boost::json::value(nullptr) : boost::json::value(info->error);
            object["priority"] = info->priority;
            object["created_at"] = cli::time_value(info->created_ms);
            object["started_at"] = cli::time_value(info->started_ms);
            object["finished_at"] = cli::time_value(info->finished_ms);
            object["due_at"] = cli::time_value(info->due_ms);
            // Past while the job is overdue (its holder stopped renewing it).
            object["lease_expires_at"] = cli::time_value(
                info->state == queue::JobState::running ? info->lease_ms : std::nullopt);
            object["worker"] = info->worker.empty() ? boost::json::value(nullptr)
                                                    : boost::json::value(info->worker);
            object["cancel_requested"] = info->cancel_requested;
            object["damaged"] = info->damage.empty() ? boost::json::value(nullptr)
                                                     : boost::json::value(info->damage);
            cli::print_json_line(object);
            continue;
        }
        if (!info) {
            cli::write_stdout(fmt::format("{}  unknown\n", printable(id, 200)));
            continue;
        }
        auto state = std::string(queue::to_string(info->state));
        auto tone = info->state == queue::JobState::succeeded ? cli::Tone::good
                    : info->state == queue::JobState::dead    ? cli::Tone::bad
                                                              : cli::Tone::plain;
        std::string text =
            fmt::format("{}  {}  queue {}  attempts {}/{}", id, cli::paint(state, tone),
                        info->queue, info->attempts, info->max_attempts);
        auto now = info->server_now_ms;
        if (info->state == queue::JobState::scheduled && info->due_ms)
            text += "  runs " + format_relative(*info->due_ms, now);
        if (info->state == queue::JobState::running && !info->worker.empty())
            text += "  worker " + info->worker;
        if (info->state == queue::JobState::running && info->lease_ms && *info->lease_ms <= now)
            text += "  overdue: lease lapsed " + format_relative(*info->lease_ms, now);
        if (info->finished_ms) text += "  ended " + format_relative(*info->finished_ms, now);
        text += "\n";
        if (info->result) text += "  result: " + one_line(*info->result, 200) + "\n";
        if (info->result_truncated > 0)
            text += fmt::format("  result truncated: {} more bytes were dropped (--max-result)\n",
                                info->result_truncated);
        if (!info->error.empty()) text += "  error: " + one_line(info->error, 200) + "\n";
        if (!info->damage.empty()) text += "  damaged: " + one_line(info->damage, 300) + "\n";
        cli::write_stdout(text);
    }
    return unknown;
}

}  // namespace workq::status
