# Stock Perl client: IO::Socket::INET->new(PeerAddr => NAME, PeerPort => PORT) connects to the
# first address of the name (inet_aton) with a blocking connect. Prints "GOT <banner>" or
# "ERR <errno name>"; the connect time (start-up excluded) goes to stderr as "connect_ms=N".
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(time);

my ($name, $port) = @ARGV;
my $t0 = time;
my $s = IO::Socket::INET->new(PeerAddr => $name, PeerPort => $port, Proto => 'tcp');
my $err = $!;
printf STDERR "connect_ms=%d\n", (time - $t0) * 1000;
$! = $err;
unless ($s) {
    my $num = $! + 0;
    my ($ename) = grep { $!{$_} } keys %!;
    print "ERR ", ($ename // "errno=$num ($@)"), "\n";
    exit 1;
}
my $line = <$s>;
unless (defined $line) { print "ERR EOF\n"; exit 1; }
chomp $line;
print "GOT $line\n";
exit 0;
