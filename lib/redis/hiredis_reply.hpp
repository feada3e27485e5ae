// Internal to lib/redis: turns a hiredis reply into a Reply value. Only the files of lib/redis
// include hiredis.
#pragma once

#include <hiredis/hiredis.h>

#include "redis/reply.hpp"

namespace workq::redis::detail {

inline Reply convert(const redisReply* raw) {
    Reply reply;
    switch (raw->type) {
        case REDIS_REPLY_STRING:
            reply.type = Reply::Type::string;
            reply.text.assign(raw->str, raw->len);
            break;
        case REDIS_REPLY_STATUS:
            reply.type = Reply::Type::status;
            reply.text.assign(raw->str, raw->len);
            break;
        case REDIS_REPLY_ERROR:
            reply.type = Reply::Type::error;
            reply.text.assign(raw->str, raw->len);
            break;
        case REDIS_REPLY_INTEGER:
            reply.type = Reply::Type::integer;
            reply.integer = raw->integer;
            break;
        case REDIS_REPLY_ARRAY:
            reply.type = Reply::Type::array;
            reply.elements.reserve(raw->elements);
            for (std::size_t i = 0; i < raw->elements; ++i)
                reply.elements.push_back(convert(raw->element[i]));
            break;
        default:
            reply.type = Reply::Type::nil;
    }
    return reply;
}

}  // namespace workq::redis::detail
