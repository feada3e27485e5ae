# bench/peers/sidekiq_jobs.rb: Sidekiq's side of `bench/run --peers` (not a test).
#
#   ruby sidekiq_jobs.rb enqueue QUEUE FILE   one job per line of FILE (push_bulk, 1,000 a call)
#   sidekiq -r ./sidekiq_jobs.rb -q QUEUE -c C   with PEER_N=N and PEER_DONE=FILE: the worker;
#       NoopJob is an in-process no-op that counts; the N-th writes "first_us done_us hwm_kib" to
#       PEER_DONE (bench/run then stops the process by pid)
#
# Connects through REDIS_URL (set by bench/run to the bench's server over loopback TCP).
require 'sidekiq'

def hwm_kib
  File.foreach('/proc/self/status') { |l| return l.split[1].to_i if l.start_with?('VmHWM:') }
  0
end

def now_us
  Process.clock_gettime(Process::CLOCK_REALTIME, :microsecond)
end

class NoopJob
  include Sidekiq::Worker
  LOCK = Mutex.new
  @count = 0
  @first = 0
  class << self
    attr_accessor :count, :first
  end

  def perform(_payload)
    n = LOCK.synchronize do
      NoopJob.first = now_us if NoopJob.count.zero?
      NoopJob.count += 1
    end
    return unless n == Integer(ENV.fetch('PEER_N', '0'))

    File.write(ENV.fetch('PEER_DONE'), "#{NoopJob.first} #{now_us} #{hwm_kib}\n")
  end
end

if $PROGRAM_NAME == __FILE__ && ARGV[0] == 'enqueue'
  queue = ARGV[1]
  lines = File.readlines(ARGV[2], chomp: true).reject(&:empty?)
  lines.each_slice(1000) do |slice|
    Sidekiq::Client.push_bulk('class' => NoopJob, 'queue' => queue, 'args' => slice.map { |p| [p] })
  end
  puts "0 #{now_us} #{hwm_kib}"
end
