// Cron expressions (lib/util/cron, workq-schedule --cron): parse_cron answers an expression or
// throws UsageError naming the expression, nothing else; for an expression it accepts,
// next_tick is strictly after its start and, in UTC, lands on a minute the fields allow (or, for
// @every, on a multiple of the period); ticks keep increasing, in Berlin across its
// daylight-saving changes too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <date/date.h>

#include "fuzz_check.hpp"
#include "util/cron.hpp"
#include "util/errors.hpp"

namespace {

using workq::SysSeconds;

bool fields_allow(const workq::CronExpression& e, SysSeconds t) {
    auto day = std::chrono::floor<date::days>(t);
    date::year_month_day ymd{date::sys_days{day.time_since_epoch()}};
    date::hh_mm_ss<std::chrono::seconds> time{t - day};
    bool dom = e.days_of_month[static_cast<unsigned>(ymd.day())];
    bool dow = e.days_of_week[date::weekday{date::sys_days{day.time_since_epoch()}}.c_encoding()];
    bool day_ok = e.day_rule == workq::DayRule::either ? (dom || dow) : (dom && dow);
    return time.seconds().count() == 0 && e.minutes[time.minutes().count()] &&
           e.hours[time.hours().count()] && e.months[static_cast<unsigned>(ymd.month())] && day_ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    workq::CronExpression expression;
    try {
        expression = workq::parse_cron(text);
    } catch (const workq::UsageError& error) {
        FUZZ_CHECK(std::string_view(error.what()).starts_with("invalid cron expression '"));
        return 0;
    }
    static const auto berlin = workq::TimeZone::named("Europe/Berlin");
    // 2024-10-26T22:00:00Z, a few hours before Berlin's clocks go back.
    const SysSeconds start{std::chrono::seconds{1729980000}};
    for (const auto* zone : {static_cast<const workq::TimeZone*>(nullptr), &berlin}) {
        auto t = start;
        for (int i = 0; i < 4; ++i) {
            auto next = workq::next_tick(expression, zone ? *zone : workq::TimeZone{}, t);
            if (!next) break;
            FUZZ_CHECK(*next > t);
            if (zone == nullptr) {
                if (expression.every.count() > 0)
                    FUZZ_CHECK(next->time_since_epoch().count() % expression.every.count() == 0);
                else
                    FUZZ_CHECK(fields_allow(expression, *next));
            }
            t = *next;
        }
    }
    return 0;
}
