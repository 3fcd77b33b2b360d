// Starts `policyctl lsp` for .policy files: diagnostics, hover, completion,
// definitions, references, formatting and quick fixes come from the server;
// highlighting comes from the TextMate grammar in syntaxes/.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("policy.server");
  const command = config.get("path", "policyctl");
  const args = ["lsp", "--check-delay", String(config.get("checkDelay", 0.3))];
  const serverOptions = {
    run: { command, args, transport: TransportKind.stdio },
    debug: { command, args: [...args, "--verbose"], transport: TransportKind.stdio },
  };
  const clientOptions = {
    documentSelector: [{ scheme: "file", language: "policy" }, { scheme: "untitled", language: "policy" }],
    synchronize: {
      // Files the editor does not have open still count: the other files of a
      // policy folder, its data lists and its tests.
      fileEvents: vscode.workspace.createFileSystemWatcher("**/*.{policy,txt,csv,json,yaml,yml}"),
    },
  };
  client = new LanguageClient("policy", "Policy language server", serverOptions, clientOptions);
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
