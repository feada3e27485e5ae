// workq-dlq ls QUEUE [--limit N] [--json | --ids] [--no-header] [FILTERS]
// workq-dlq show (ID... | -) [--json]
// workq-dlq requeue QUEUE (ID... | --all | -) [FILTERS]
// workq-dlq rm QUEUE (ID... | --all | -) [FILTERS]
// workq-dlq count QUEUE
// workq-dlq export QUEUE [FILTERS]          JSON lines with payloads, for `import`
// workq-dlq import QUEUE [FILE] [--new-ids] bring exported jobs back as waiting jobs
// workq-dlq cap QUEUE [--max-count N] [--max-age D]   keep at most N / none older than D
// FILTERS: --older-than D, --newer-than D, --error-match REGEX
//
// Dead letters are where operators go when something broke: every id given is processed,
// unknown ones are reported on stderr and make the exit status 1.
#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <fstream>
#include <iostream>
#include <span>
#include <type_traits>

#include "cli/json.hpp"
#include "cli/options.hpp"
#include "cli/output.hpp"
#include "cli/runner.hpp"
#include "cli/server.hpp"
#include "cli/table.hpp"
#include "dead_letters.hpp"
#include "queue/client.hpp"
#include "util/duration.hpp"
#include "util/errors.hpp"
#include "util/ids.hpp"
#include "util/log.hpp"
#include "util/names.hpp"
#include "util/text.hpp"
#include "util/time.hpp"

namespace workq::dlq {
namespace {

constexpr std::size_t batch = 500;  // ids per script call: short scripts, few round trips

constexpr const char* footer = R"(Output:
  ls: newest first, ID DIED ATTEMPTS ERROR (first line); a header and ages at a terminal, in a
      pipe no header and DIED_AT in RFC 3339. On stderr: a note when the list is empty or the
      limit cut it. With --ids: the ids alone. With --json: one object per line with id,
      queue, died_at (RFC 3339), attempts, max_attempts, error, reason.
  show: payload, timestamps and every attempt's error (time, attempt, reason, text).
  requeue, rm: the ids requeued / removed, one per line.
  count: the number alone.
  export: JSON lines {id, queue, died_at, attempts, max_attempts, priority, error, errors,
      payload | payload_base64}; import reads them back.

Exit status:
  0    success
  1    some id was not a dead letter of that queue, or requeue left it dead: its record is
       corrupt, or a live job holds its --unique key (each reported on stderr; the others
       processed); show or export met a damaged letter (named; shown with what can be
       read); the queue is damaged (README, "Damaged data")
  2    usage error
  3    cannot reach Redis

Examples:
  workq-dlq ls mail
  workq-dlq show 01jd9x3k7m2q5v8wza
  workq-dlq requeue mail --all --error-match 'timeout'
  workq-dlq ls mail --ids --limit 0 --older-than 7d | workq-dlq rm mail -
  workq-dlq export mail > mail-dead.jsonl && workq-dlq import --new-ids mail-replay mail-dead.jsonl
  workq-dlq cap mail --max-count 100000 --max-age 30d
)";

struct FilterOptions {
    std::string older_than, newer_than, error_match;
    void add_to(CLI::App* command) {
        command->add_option("--older-than", older_than,
                            "Only dead letters that died more than D ago");
        command->add_option("--newer-than", newer_than,
                            "Only dead letters that died less than D ago");
        command->add_option("--error-match", error_match,
                            "Only dead letters whose error matches this regex (ECMAScript)");
    }
    Filter build() const {
        Filter filter;
        if (!older_than.empty())
            filter.older_than = parse_duration_or_throw(older_than, "--older-than");
        if (!newer_than.empty())
            filter.newer_than = parse_duration_or_throw(newer_than, "--newer-than");
        if (!error_match.empty()) {
            filter.error_match.emplace(error_match);  // UsageError when invalid
            filter.error_pattern = error_match;
        }
        return filter;
    }
};

std::vector<std::string> read_ids_from_stdin() {
    std::vector<std::string> ids;
    for (std::string line; std::getline(std::cin, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) ids.push_back(line);
    }
    return ids;
}

// The ids a requeue/rm acts on: given, from stdin, or every dead letter passing the filter.
std::vector<std::string> target_ids(std::vector<std::string> ids, bool all,
                                    redis::Connection& connection, const queue::QueueKeys& keys,
                                    const Filter& filter, const std::string& verb) {
    if (!ids.empty() && all) throw UsageError("give ids, - or --all: one of them, not both");
    if (ids.size() == 1 && ids[0] == "-") return read_ids_from_stdin();
    if (!ids.empty()) return ids;
    if (!all && !filter.any())
        throw UsageError(
            fmt::format("name the dead letters of {0}: {1} {0} ID..., {1} {0} - (ids on stdin) or "
                        "{1} {0} --all",
                        keys.queue(), verb));
    std::vector<std::string> selected;
    each_dead_letter(
        connection, keys, filter, 0,
        [&](const DeadLetter& letter) {
            selected.push_back(letter.id);
            return true;
        },
        LetterFields::id_only);
    return selected;
}

// Why a requeue left `outcome` dead, for stderr.
std::string requeue_problem(const queue::RequeueOutcome& outcome, const queue::QueueKeys& keys) {
    switch (outcome.status) {
        case queue::RequeueStatus::corrupt:
            return fmt::format(
                "cannot requeue {}: its record is corrupt (see workq-dlq show); it "
                "stays dead",
                outcome.id);
        case queue::RequeueStatus::unique_held:
            return fmt::format(
                "cannot requeue {}: live job {} holds its --unique key; it stays dead "
                "(requeue it once {} has ended)",
                outcome.id, printable(outcome.holder), printable(outcome.holder));
        default:
            return fmt::format("cannot requeue {}: no such dead letter in {}", outcome.id,
                               keys.queue());
    }
}

// Prints the ids acted on; names each problem on stderr. Returns how many were not acted on.
template <typename Outcome>
std::size_t report_outcomes(const std::vector<Outcome>& outcomes, const queue::QueueKeys& keys) {
    std::size_t problems = 0;
    for (const auto& outcome : outcomes) {
        if (outcome.ok) {
            cli::write_stdout(outcome.id + "\n");
            continue;
        }
        ++problems;
        if constexpr (std::is_same_v<Outcome, queue::RequeueOutcome>)
            log::error(requeue_problem(outcome, keys));
        else
            log::error(fmt::format("cannot remove {}: no such dead letter in {}", outcome.id,
                                   keys.queue()));
    }
    cli::flush_stdout();
    return problems;
}

// Runs requeue or delete for `ids` in batches; prints each id acted on; returns how many could
// not be acted on.
std::size_t act(redis::Connection& connection, const queue::QueueKeys& keys,
                const std::vector<std::string>& ids, bool requeue) {
    std::size_t problems = 0;
    std::vector<std::string> valid;
    for (const auto& id : ids) {
        if (auto problem = job_id_problem(id)) {
            ++problems;
            log::error(fmt::format("cannot {} '{}': not a dead letter of {} (invalid id: {})",
                                   requeue ? "requeue" : "remove", printable(id), keys.queue(),
                                   *problem));
        } else {
            valid.push_back(id);
        }
    }
    for (std::size_t start = 0; start < valid.size(); start += batch) {
        std::span<const std::string> chunk(valid.data() + start,
                                           std::min(batch, valid.size() - start));
        if (requeue) {
            auto reply = queue::run(connection, queue::dead_requeue_call(keys, chunk));
            problems += report_outcomes(queue::parse_requeue_outcomes(reply), keys);
        } else {
            auto reply = queue::run(connection, queue::dead_delete_call(keys, chunk));
            problems += report_outcomes(queue::parse_id_outcomes(reply), keys);
        }
    }
    return problems;
}

// --all without filters: the oldest dead letters, a batch per script call, never a list of every
// id in memory. At most as many as there were when we began: a letter requeued here that dies
// again meanwhile is not requeued twice. Letters a requeue leaves dead (a corrupt record, a
// --unique key held by a live job) keep their place at the head: later batches skip them.
// Returns how many could not be acted on.
std::size_t act_on_all(redis::Connection& connection, const queue::QueueKeys& keys, bool requeue) {
    std::size_t problems = 0;
    auto left = queue::expect_type(connection.command({"ZCARD", keys.dead()}), keys.dead(), "zset")
                    .as_integer();
    while (left > 0) {
        auto count = static_cast<std::size_t>(std::min<long long>(left, batch));
        std::size_t seen = 0;
        if (requeue) {
            auto reply =
                queue::run(connection, queue::dead_requeue_call(keys, {}, count, problems));
            auto outcomes = queue::parse_requeue_outcomes(reply);
            seen = outcomes.size();
            problems += report_outcomes(outcomes, keys);
        } else {
            auto outcomes = queue::parse_id_outcomes(
                queue::run(connection, queue::dead_delete_call(keys, {}, count)));
            seen = outcomes.size();
            problems += report_outcomes(outcomes, keys);
        }
        if (seen == 0) break;
        left -= static_cast<long long>(seen);
    }
    return problems;
}

boost::json::object letter_json(const DeadLetter& letter, const std::string& queue) {
    return boost::json::object{{"id", letter.id},
                               {"queue", queue},
                               {"died_at", format_rfc3339(letter.died_ms)},
                               {"attempts", letter.attempts},
                               {"max_attempts", letter.max_attempts},
                               {"error", letter.error},
                               {"reason", letter.reason}};
}

enum class LsFormat { table, json, ids };

int ls(redis::Connection& connection, const queue::QueueKeys& keys, const Filter& filter,
       std::size_t limit, LsFormat format, cli::Table::Header header) {
    auto now = server_now_ms(connection);
    // At a terminal, ages ("4m ago"); in a pipe, RFC 3339 times, so that every row has the same
    // fields for awk and cut.
    bool people = cli::stdout_is_terminal();
    cli::Table table({"ID", people ? "DIED" : "DIED_AT", "ATTEMPTS", "ERROR"},
                     {false, false, true, false});
    std::size_t shown = 0;
    each_dead_letter(connection, keys, filter, limit, [&](const DeadLetter& letter) {
        ++shown;
        if (format == LsFormat::ids) {
            cli::write_stdout(letter.id + "\n");
        } else if (format == LsFormat::json) {
            cli::print_json_line(letter_json(letter, keys.queue()));
        } else {
            auto error = letter.error.empty() ? letter.reason : letter.error;
            // The last error's first line: handlers print the cause last, but its first line is
            // what fits; `show` has the whole text.
            table.add(
                {letter.id,
                 people ? format_relative(letter.died_ms, now) : format_rfc3339(letter.died_ms),
                 fmt::format("{}/{}", letter.attempts, letter.max_attempts), one_line(error, 80)});
        }
        return true;
    });
    if (format == LsFormat::table && !table.empty()) cli::write_stdout(table.render(header));
    cli::flush_stdout();
    // What stdout cannot say: that the list is empty, or that --limit cut it.
    if (shown == 0) {
        log::info(fmt::format("no dead letters in queue {}{}", keys.queue(),
                              filter.any() ? " pass the filters" : ""));
    } else if (limit > 0 && shown == limit) {
        if (filter.any())
            log::info(
                fmt::format("stopped at --limit {}; more may pass the filters (--limit 0 "
                            "for all)",
                            limit));
        else if (auto total = queue::expect_type(connection.command({"ZCARD", keys.dead()}),
                                                 keys.dead(), "zset")
                                  .as_integer();
                 total > static_cast<long long>(shown))
            log::info(
                fmt::format("{} of {} dead letters listed (--limit N for more, --limit 0 for all)",
                            shown, total));
    }
    return 0;
}

// A dead letter with everything needed to bring it back: `show --json` and `export` print the
// same object, and `import` reads it.
boost::json::object dead_letter_json(const queue::JobInfo& info) {
    boost::json::object object{
        {"id", info.id},
        {"queue", info.queue},
        {"died_at", cli::time_value(info.died_ms ? info.died_ms : info.finished_ms)},
        {"created_at", cli::time_value(info.created_ms)},
        {"attempts", info.attempts},
        {"max_attempts", info.max_attempts},
        {"priority", info.priority},
        {"error", info.error},
        {"reason", info.reason}};
    boost::json::array errors;
    for (const auto& e : info.errors)
        errors.push_back(boost::json::object{{"at", format_rfc3339(e.at_ms)},
                                             {"attempt", e.attempt},
                                             {"reason", e.reason},
                                             {"error", e.error}});
    object["errors"] = std::move(errors);
    cli::put_bytes(object, "payload", info.payload);
    return object;
}

int show(redis::Connection& connection, const std::string& namespace_name,
         const std::vector<std::string>& ids, bool json) {
    std::size_t missing = 0;
    std::vector<std::string> valid;
    for (const auto& id : ids)
        if (job_id_problem(id)) {
            ++missing;
            log::error(fmt::format("no dead letter '{}' (invalid id)", printable(id)));
        } else {
            valid.push_back(id);
        }
    auto found = queue::find_jobs(connection, queue::NamespaceKeys(namespace_name), valid, true);
    for (std::size_t i = 0; i < valid.size(); ++i) {
        const auto& info = found[i];
        if (info && !info->damage.empty()) {
            // Shown with what can be read (unless nothing can), the others go on; exit 1.
            ++missing;
            log::error(fmt::format("job {} in queue {} is damaged: {} (README, \"Damaged data\")",
                                   valid[i], info->queue, printable(info->damage, 300)));
            if (info->state == queue::JobState::unknown) continue;
        }
        if (!info || info->state != queue::JobState::dead) {
            ++missing;
            log::error(info ? fmt::format("job {} is {}, not a dead letter (see workq-status job)",
                                          valid[i], queue::to_string(info->state))
                            : fmt::format("no dead letter {}", valid[i]));
            continue;
        }
        if (json) {
            cli::print_json_line(dead_letter_json(*info));
            continue;
        }
        auto now = info->server_now_ms;
        std::string text = fmt::format("{}  dead  queue {}  attempts {}/{}\n", info->id,
                                       info->queue, info->attempts, info->max_attempts);
        if (info->created_ms)
            text += fmt::format("  created: {} ({})\n", format_rfc3339(*info->created_ms),
                                format_relative(*info->created_ms, now));
        auto died = info->died_ms ? info->died_ms : info->finished_ms;
        if (died)
            text += fmt::format("  died:    {} ({})\n", format_rfc3339(*died),
                                format_relative(*died, now));
        if (info->payload) {
            text += fmt::format("  payload ({} bytes): {}\n", info->payload->size(),
                                one_line(*info->payload, 200));
        }
        if (!info->damage.empty()) text += "  damaged: " + one_line(info->damage, 300) + "\n";
        for (const auto& e : info->errors) {
            text += fmt::format("  attempt {} at {}: {}\n", e.attempt, format_rfc3339(e.at_ms),
                                e.reason);
            std::string_view rest = e.error;
            while (!rest.empty()) {
                auto newline = rest.find('\n');
                text += "    | " + one_line(rest.substr(0, newline), 300) + "\n";
                rest = newline == std::string_view::npos ? std::string_view{}
                                                         : rest.substr(newline + 1);
            }
        }
        cli::write_stdout(text + "\n");
    }
    return missing > 0 ? 1 : 0;
}

int export_letters(redis::Connection& connection, const queue::QueueKeys& keys,
                   const Filter& filter) {
    std::size_t damaged = 0;
    std::vector<std::string> page;
    auto flush = [&] {
        if (page.empty()) return;
        std::vector<queue::ScriptCall> calls;
        for (const auto& id : page) {
            calls.push_back(queue::job_info_call(keys, id, true));
            queue::append(connection, calls.back());
        }
        auto replies = connection.read_script_replies();
        for (std::size_t i = 0; i < page.size(); ++i) {
            queue::check_reply(calls[i], replies[i]);
            auto info = queue::parse_job_info(replies[i], page[i], keys.queue());
            if (!info) continue;  // removed meanwhile
            if (!info->damage.empty()) {
                // Exported with what can be read (an import makes it whole), unless nothing can;
                // the export goes on past it and exits 1.
                ++damaged;
                log::error(fmt::format(
                    "dead letter {} is damaged: {}; {}", page[i], printable(info->damage, 300),
                    info->state == queue::JobState::unknown ? "not exported"
                                                            : "exported with what can be read"));
                if (info->state == queue::JobState::unknown) continue;
            }
            cli::print_json_line(dead_letter_json(*info));
        }
        cli::flush_stdout();
        page.clear();
    };
    // The letters' ids only: job_info reads each record (the fields of an HMGET per letter
    // went unused: 100,000 commands of an export of 100,000).
    each_dead_letter(
        connection, keys, filter, 0,
        [&](const DeadLetter& letter) {
            page.push_back(letter.id);
            if (page.size() >= batch) flush();
            return true;
        },
        LetterFields::id_only);
    flush();
    return damaged > 0 ? 1 : 0;
}

enum class ImportIds { kept, new_ones };

int import_letters(redis::Connection& connection, const std::string& namespace_name,
                   const queue::QueueKeys& keys, std::istream& in, const std::string& source,
                   ImportIds id_policy) {
    std::size_t line_number = 0, problems = 0;
    bool registered = false;
    struct Pending {
        std::size_t line;
        std::string id, payload;
        queue::EnqueueOptions options;
    };
    std::vector<Pending> pending;
    auto flush = [&] {
        std::vector<std::string> ids;
        for (const auto& job : pending)
            ids.push_back(job.id);
        // Ids are unique in the namespace: each is reserved for this queue first (see
        // queue::place_ids); one that another queue holds is skipped.
        auto places =
            queue::place_ids(connection, queue::NamespaceKeys(namespace_name), ids, keys.queue());
        std::erase_if(pending, [&, i = std::size_t(0)](Pending& job) mutable {
            const auto& place = places[i++];
            if (place.fence_ms) {
                job.options.id_fence_ms = place.fence_ms;
                return false;
            }
            ++problems;
            log::error(fmt::format("{} line {}: skipped {}: a job with this id exists in queue {}",
                                   source, job.line, job.id, place.queue));
            return true;
        });
        // The queue becomes known with its first job: an import that brings nothing back (a
        // bad file, ids that exist) makes no queue.
        if (!pending.empty() && !registered) {
            connection.call({"SADD", queue::NamespaceKeys(namespace_name).queues(), keys.queue()});
            registered = true;
        }
        std::vector<queue::ScriptCall> calls;
        for (const auto& job : pending) {
            std::vector<queue::NewJob> one{{job.id, job.payload}};
            calls.push_back(queue::enqueue_call(keys, job.options, one));
            queue::append(connection, calls.back());
        }
        auto replies = connection.read_script_replies();
        for (std::size_t i = 0; i < pending.size(); ++i) {
            queue::check_reply(calls[i], replies[i]);
            std::vector<queue::NewJob> one{{pending[i].id, pending[i].payload}};
            auto result = queue::parse_enqueue(replies[i], one).at(0);
            if (result.status == queue::EnqueueStatus::created) {
                cli::write_stdout(pending[i].id + "\n");
            } else if (result.status == queue::EnqueueStatus::reservation_lapsed) {
                ++problems;
                log::error(
                    fmt::format("{} line {}: skipped {}: its id's reservation lapsed before "
                                "the server made the job (is it overloaded?); import it "
                                "again",
                                source, pending[i].line, pending[i].id));
            } else {
                ++problems;
                log::error(fmt::format("{} line {}: skipped {}: a job with this id exists", source,
                                       pending[i].line, pending[i].id));
            }
        }
        cli::flush_stdout();
        pending.clear();
    };
    for (std::string line; std::getline(in, line);) {
        ++line_number;
        if (line.empty()) continue;
        boost::system::error_code ec;
        auto value = boost::json::parse(line, ec);
        Pending job;
        job.line = line_number;
        job.options.caller_ids = true;
        try {
            if (ec || !value.is_object()) throw UsageError("not a JSON object");
            const auto& object = value.as_object();
            if (id_policy == ImportIds::new_ones) {
                // A copy beside the originals (ids are unique in the namespace): fresh ids.
                job.id = new_job_id();
            } else {
                auto* id = object.if_contains("id");
                if (!id || !id->is_string()) throw UsageError("no id");
                job.id = boost::json::value_to<std::string>(*id);
                if (auto problem = job_id_problem(job.id))
                    throw UsageError("invalid id: " + *problem);
            }
            if (auto* p = object.if_contains("payload"); p && p->is_string()) {
                job.payload = boost::json::value_to<std::string>(*p);
            } else if (auto* b = object.if_contains("payload_base64"); b && b->is_string()) {
                auto decoded = base64_decode(b->as_string());
                if (!decoded) throw UsageError("payload_base64 is not base64");
                job.payload = *decoded;
            } else {
                throw UsageError("no payload or payload_base64");
            }
            if (auto* m = object.if_contains("max_attempts");
                m && m->is_int64() && m->as_int64() >= 1)
                job.options.max_attempts = m->as_int64();
            if (auto* pr = object.if_contains("priority"); pr && pr->is_int64())
                job.options.priority = pr->as_int64();
        } catch (const std::exception& error) {
            ++problems;
            log::error(fmt::format("{} line {}: skipped: {}", source, line_number, error.what()));
            continue;
        }
        pending.push_back(std::move(job));
        if (pending.size() >= batch) flush();
    }
    flush();
    return problems > 0 ? 1 : 0;
}

// `workq-dlq requeue ID` takes the id for the queue: when the "queue" is no queue of the
// namespace but a job's id, say how the command reads, with that job's queue filled in.
void refuse_id_as_queue(redis::Connection& connection, const std::string& namespace_name,
                        const std::string& queue_name, const std::string& verb) {
    queue::NamespaceKeys namespace_keys(namespace_name);
    if (job_id_problem(queue_name) ||
        connection.call({"SISMEMBER", namespace_keys.queues(), queue_name}).as_integer() == 1)
        return;
    std::vector<std::string> ids{queue_name};
    auto found = queue::find_jobs(connection, namespace_keys, ids, false);
    if (found.empty() || !found[0]) return;
    throw UsageError(fmt::format(
        "'{0}' is a job, not a queue: the queue comes first, {1} QUEUE ID... (here: {1} {2} {0})",
        queue_name, verb, found[0]->queue));
}

int dlq_main(int argc, char** argv) {
    CLI::App app{"Inspect, requeue and delete dead-lettered jobs.", "workq-dlq"};
    app.require_subcommand(1);
    cli::CommonOptions common;
    cli::add_common_options(app, common);
    std::string queue_name;
    std::vector<std::string> ids;
    std::size_t limit = 50;
    bool json = false, all = false, ids_only = false, no_header = false;
    long long max_count = 0;
    std::string max_age = "0";
    std::string file;
    FilterOptions filters;

    auto* ls_cmd = app.add_subcommand("ls", "List dead letters, newest first");
    ls_cmd->add_option("QUEUE", queue_name, "Queue")->required();
    ls_cmd->add_option("--limit", limit, "At most this many (default 50; 0: all)");
    auto* json_flag = ls_cmd->add_flag("--json", json, "One JSON object per line");
    ls_cmd->add_flag("--ids", ids_only, "Only the ids, one per line")->excludes(json_flag);
    ls_cmd->add_flag("--no-header", no_header,
                     "No header line (there is none when stdout is not a terminal)");
    filters.add_to(ls_cmd);
    auto* show_cmd =
        app.add_subcommand("show", "Show dead letters with payload and every attempt's error");
    show_cmd->add_option("ID", ids, "Job ids, or - to read them from stdin")->required();
    show_cmd->add_flag("--json", json, "One JSON object per line");
    auto* requeue_cmd = app.add_subcommand("requeue", "Requeue dead letters (attempts reset to 0)");
    requeue_cmd->add_option("QUEUE", queue_name, "Queue")->required();
    requeue_cmd->add_option("ID", ids, "Job ids, or - to read them from stdin");
    requeue_cmd->add_flag("--all", all, "Every dead letter of the queue (that passes the filters)");
    filters.add_to(requeue_cmd);
    auto* rm_cmd = app.add_subcommand("rm", "Delete dead letters for good");
    rm_cmd->add_option("QUEUE", queue_name, "Queue")->required();
    rm_cmd->add_option("ID", ids, "Job ids, or - to read them from stdin");
    rm_cmd->add_flag("--all", all, "Every dead letter of the queue (that passes the filters)");
    filters.add_to(rm_cmd);
    auto* count_cmd = app.add_subcommand("count", "Print the number of dead letters");
    count_cmd->add_option("QUEUE", queue_name, "Queue")->required();
    auto* export_cmd =
        app.add_subcommand("export", "Write dead letters as JSON lines, payloads included");
    export_cmd->add_option("QUEUE", queue_name, "Queue")->required();
    filters.add_to(export_cmd);
    auto* import_cmd =
        app.add_subcommand("import",
                           "Enqueue the jobs of an export as waiting jobs (same ids, "
                           "or new ones with --new-ids)");
    import_cmd->add_option("QUEUE", queue_name, "Queue to put them in")->required();
    import_cmd->add_option("FILE", file, "Export file (default: stdin)");
    bool new_ids = false;
    import_cmd->add_flag("--new-ids", new_ids,
                         "Give each job a new id (to copy jobs whose ids exist, e.g. into "
                         "another queue of the same namespace)");
    auto* cap_cmd = app.add_subcommand(
        "cap", "Cap the dead letters kept (trimmed ones are counted in workq-status)");
    cap_cmd->add_option("QUEUE", queue_name, "Queue")->required();
    cap_cmd->add_option("--max-count", max_count, "Keep at most this many (0: no limit)");
    cap_cmd->add_option("--max-age", max_age, "Keep none older than this (0: no limit)");
    cli::describe_tool(app, footer);
    cli::parse_command_line(app, argc, argv);
    auto config = cli::finish_options(app, common, "dlq");
    auto server = cli::resolve_server(common, config, "dlq");

    if (!show_cmd->parsed()) check_queue_name(queue_name);
    auto filter = filters.build();
    Millis cap_age{0};
    if (cap_cmd->parsed()) {
        cap_age = parse_duration_or_throw(max_age, "--max-age");
        if (max_count < 0) throw UsageError("--max-count: must not be negative");
    }
    std::unique_ptr<std::ifstream> import_file;
    if (import_cmd->parsed() && !file.empty() && file != "-") {
        import_file = std::make_unique<std::ifstream>(file);
        if (!*import_file)
            throw UsageError(fmt::format("cannot read {}: {}", file, std::strerror(errno)));
    }

    auto connection = cli::connect(server);
    queue::QueueKeys keys(server.namespace_name,
                          queue_name.empty() ? std::string("x") : queue_name);
    if (ls_cmd->parsed())
        return ls(connection, keys, filter, limit,
                  json       ? LsFormat::json
                  : ids_only ? LsFormat::ids
                             : LsFormat::table,
                  no_header || !cli::stdout_is_terminal() ? cli::Table::Header::hidden
                                                          : cli::Table::Header::shown);
    if (show_cmd->parsed()) {
        if (ids.size() == 1 && ids[0] == "-") ids = read_ids_from_stdin();
        return show(connection, server.namespace_name, ids, json);
    }
    std::string verb = requeue_cmd->parsed() ? "workq-dlq requeue" : "workq-dlq rm";
    if (requeue_cmd->parsed() || rm_cmd->parsed())
        refuse_id_as_queue(connection, server.namespace_name, queue_name, verb);
    if ((requeue_cmd->parsed() || rm_cmd->parsed()) && all && ids.empty() && !filter.any()) {
        return act_on_all(connection, keys, requeue_cmd->parsed()) > 0 ? 1 : 0;
    }
    if (requeue_cmd->parsed() || rm_cmd->parsed()) {
        auto targets = target_ids(ids, all, connection, keys, filter, verb);
        return act(connection, keys, targets, requeue_cmd->parsed()) > 0 ? 1 : 0;
    }
    if (count_cmd->parsed()) {
        auto dead = keys.dead();
        cli::write_stdout(
            std::to_string(queue::expect_type(connection.command({"ZCARD", dead}), dead, "zset")
                               .as_integer()) +
            "\n");
        return 0;
    }
    if (export_cmd->parsed()) return export_letters(connection, keys, filter);
    if (import_cmd->parsed()) {
        auto id_policy = new_ids ? ImportIds::new_ones : ImportIds::kept;
        if (import_file)
            return import_letters(connection, server.namespace_name, keys, *import_file, file,
                                  id_policy);
        return import_letters(connection, server.namespace_name, keys, std::cin, "stdin",
                              id_policy);
    }
    if (cap_cmd->parsed()) {
        auto trimmed = queue::parse_count(
            queue::run(connection, queue::dead_cap_call(keys, max_count, cap_age)));
        log::info(fmt::format(
            "dead-letter cap of {} set: {}; {} trimmed so far", queue_name,
            max_count == 0 && cap_age.count() == 0
                ? std::string("none")
                : fmt::format(
                      "at most {} kept, none older than {}",
                      max_count == 0 ? std::string("any number") : std::to_string(max_count),
                      cap_age.count() == 0 ? std::string("any age") : format_duration(cap_age)),
            trimmed));
        return 0;
    }
    return 0;
}

}  // namespace
}  // namespace workq::dlq

int main(int argc, char** argv) {
    return workq::cli::run("workq-dlq", argc, argv, workq::dlq::dlq_main);
}
