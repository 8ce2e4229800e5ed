/**
 * `portsnare completion bash|zsh|fish`: a completion script for the shell, built from the
 * program's own commands and options (so it cannot fall behind them).
 *   bash: source <(portsnare completion bash)      (or write it to /etc/bash_completion.d/portsnare)
 *   zsh:  portsnare completion zsh > "${fpath[1]}/_portsnare"
 *   fish: portsnare completion fish > ~/.config/fish/completions/portsnare.fish
 */
import type { Command } from 'commander';
import type { CliDeps } from './context';
import { CliError, EXIT } from './errors';

interface Spec {
  readonly name: string;
  readonly description: string;
  readonly options: string[];
  readonly subcommands: Spec[];
}

function specOf(command: Command): Spec {
  return {
    name: command.name(),
    description: command.summary() || command.description().split(/[.:]/)[0] || '',
    options: command.options.flatMap((option) => [option.long, option.short].filter((flag): flag is string => typeof flag === 'string')).concat('--help'),
    subcommands: command.commands.filter((sub) => sub.name() !== 'help').map(specOf),
  };
}

function quote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export function bashScript(root: Spec): string {
  const cases = root.subcommands.map((sub) => {
    const words = [...sub.subcommands.map((s) => s.name), ...sub.options].join(' ');
    const inner = sub.subcommands.map((s) => `        ${s.name}) words=${quote(s.options.join(' '))} ;;`).join('\n');
    return `    ${sub.name})\n      case "\${COMP_WORDS[2]}" in\n${inner}${inner ? '\n' : ''}        *) words=${quote(words)} ;;\n      esac ;;`;
  });
  return `# portsnare bash completion (portsnare completion bash)
_portsnare() {
  local cur=\${COMP_WORDS[COMP_CWORD]} words
  if [ "$COMP_CWORD" -eq 1 ]; then
    words=${quote([...root.subcommands.map((s) => s.name), ...root.options].join(' '))}
  else
    case "\${COMP_WORDS[1]}" in
${cases.join('\n')}
    *) words='' ;;
    esac
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _portsnare portsnare
`;
}

export function zshScript(root: Spec): string {
  const commands = root.subcommands.map((sub) => `    ${quote(`${sub.name}:${sub.description.replace(/:/g, ' ')}`)}`).join('\n');
  const cases = root.subcommands.map((sub) => `    ${sub.name}) _values 'option' ${[...sub.subcommands.map((s) => s.name), ...sub.options].map(quote).join(' ') || "''"} ;;`).join('\n');
  return `#compdef portsnare
# portsnare zsh completion (portsnare completion zsh)
_portsnare() {
  local -a commands
  commands=(
${commands}
  )
  if (( CURRENT == 2 )); then
    _describe 'command' commands
    return
  fi
  case $words[2] in
${cases}
  esac
}
compdef _portsnare portsnare
`;
}

export function fishScript(root: Spec): string {
  const lines = ['# portsnare fish completion (portsnare completion fish)', 'complete -c portsnare -f'];
  for (const sub of root.subcommands) {
    lines.push(`complete -c portsnare -n __fish_use_subcommand -a ${sub.name} -d ${quote(sub.description)}`);
    for (const inner of sub.subcommands) lines.push(`complete -c portsnare -n ${quote(`__fish_seen_subcommand_from ${sub.name}`)} -a ${inner.name} -d ${quote(inner.description)}`);
    for (const option of sub.options.filter((o) => o.startsWith('--'))) lines.push(`complete -c portsnare -n ${quote(`__fish_seen_subcommand_from ${sub.name}`)} -l ${option.slice(2)}`);
  }
  return lines.join('\n') + '\n';
}

export function registerCompletion(program: Command, deps: CliDeps): void {
  program
    .command('completion')
    .summary('shell completion script')
    .description('Print a completion script for bash, zsh or fish: source <(portsnare completion bash); portsnare completion zsh > "${fpath[1]}/_portsnare"; portsnare completion fish > ~/.config/fish/completions/portsnare.fish')
    .argument('<shell>', 'bash, zsh or fish')
    .action((shell: string) => {
      const root = specOf(program);
      const script = shell === 'bash' ? bashScript(root) : shell === 'zsh' ? zshScript(root) : shell === 'fish' ? fishScript(root) : undefined;
      if (script === undefined) throw new CliError(`completion: ${JSON.stringify(shell)} is not bash, zsh or fish`, EXIT.usage);
      deps.io.out(script.trimEnd());
    });
}
